# Databricks notebook source
ENV = "mine"
