# Databricks notebook source
print("lower r")
