# Databricks notebook source
print("python")
